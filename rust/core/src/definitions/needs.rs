//! Which profile fields a message's templates read, so an outbox effect carries
//! those and not the whole profile (smaller rows, less personal data at rest), and
//! whether they read the loyalty balances at all.
//!
//! Conservative by construction: any use of `profile` other than `profile.NAME` or
//! `profile['NAME']` (a loop, a filter on the whole map, `profile.get(...)`) means
//! the whole profile; any `loyalty` that is not part of a longer name means the
//! balances.

use std::collections::BTreeSet;

/// Profile fields a template needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileNeeds {
    All,
    Fields(BTreeSet<String>),
}

impl ProfileNeeds {
    pub fn none() -> Self {
        ProfileNeeds::Fields(BTreeSet::new())
    }

    pub fn wants(&self, field: &str) -> bool {
        match self {
            ProfileNeeds::All => true,
            ProfileNeeds::Fields(f) => f.contains(field),
        }
    }

    /// Add what `template` reads.
    pub fn scan(&mut self, template: &str) {
        for (before, end) in names(template, "profile") {
            if before == Some(b'.') {
                continue; // an attribute called profile
            }
            match field_after(&template[end..]) {
                Some(name) if name != "get" && name != "items" && name != "keys" && name != "values" => {
                    if let ProfileNeeds::Fields(f) = self {
                        f.insert(name.to_owned());
                    }
                }
                _ => {
                    *self = ProfileNeeds::All;
                    return;
                }
            }
        }
    }
}

/// Can `template` read the contact's loyalty balances? Templates see them as the
/// variable `loyalty` only (their other variables are `contact`, `event`,
/// `profile` and `recent`: `channels/templates.py`, `template_context`), and
/// Jinja reaches a variable by its name alone. Conservatively, the word `loyalty`
/// anywhere counts (`event.loyalty`, a string or a comment too); only longer
/// names made of ASCII letters, digits and `_` (`loyalty_id`, `myloyalty`) do
/// not, as Jinja names are case-sensitive.
pub fn reads_loyalty(template: &str) -> bool {
    names(template, "loyalty").next().is_some()
}

/// Where `word` stands in `template` as a whole name, not part of a longer one
/// (`profiles`, `loyalty_id`): the byte before it, if any, and where it ends.
fn names<'t>(template: &'t str, word: &'t str) -> impl Iterator<Item = (Option<u8>, usize)> + 't {
    let bytes = template.as_bytes();
    template.match_indices(word).filter_map(move |(at, _)| {
        let before = at.checked_sub(1).map(|i| bytes[i]);
        let end = at + word.len();
        let whole = !before.is_some_and(is_ident) && !bytes.get(end).copied().is_some_and(is_ident);
        whole.then_some((before, end))
    })
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The field named right after `profile`: `.name` or `['name']` / `["name"]`.
fn field_after(rest: &str) -> Option<&str> {
    let rest = rest.trim_start();
    if let Some(r) = rest.strip_prefix('.') {
        let r = r.trim_start();
        let end = r.bytes().position(|b| !is_ident(b)).unwrap_or(r.len());
        return (end > 0).then(|| &r[..end]);
    }
    let r = rest.strip_prefix('[')?.trim_start();
    let quote = r.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let r = &r[1..];
    let end = r.find(quote)?;
    let after = r[end + 1..].trim_start();
    after.starts_with(']').then(|| &r[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs(templates: &[&str]) -> ProfileNeeds {
        let mut n = ProfileNeeds::none();
        for t in templates {
            n.scan(t);
        }
        n
    }

    fn fields(names: &[&str]) -> ProfileNeeds {
        ProfileNeeds::Fields(names.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn named_fields_only() {
        assert_eq!(needs(&["Hi {{ profile.first_name | default('you') }}", "{{ profile['city'] }} {{profile . tag}}"]),
                   fields(&["city", "first_name", "tag"]));
        assert_eq!(needs(&["{{ event.total_amount }} {{ contact }}"]), fields(&[]));
        assert_eq!(needs(&["{{ event.profile }} {{ my_profile }} {{ profiles }}"]), fields(&[]));
    }

    #[test]
    fn loyalty_is_read_when_named() {
        for reads in ["{{ loyalty.club.qualifying }}", "{{loyalty['club']}}", "{% for p, b in loyalty.items() %}{% endfor %}",
                      "{{ loyalty|tojson }}", "{% set l = loyalty %}", "{{ event.loyalty }}", "'loyalty'", "x\nloyalty", "loyalty",
                      "{{ (loyalty) }}", "{{-loyalty-}}", "éloyalty", "loyaltyé"] {
            assert!(reads_loyalty(reads), "{reads}");
        }
        for not in ["", "Hi {{ profile.name }}", "{{ event.loyalty_id }}", "{{ myloyalty }}", "{{ loyalty2 }}", "Loyal customer?",
                    "{{ Loyalty }}", "{{ LOYALTY }}", "{{ loyalty_club }} {{ _loyalty }}"] {
            assert!(!reads_loyalty(not), "{not}");
        }
    }

    #[test]
    fn any_other_use_means_all() {
        assert_eq!(needs(&["{% for k, v in profile.items() %}{{ k }}{% endfor %}"]), ProfileNeeds::All);
        assert_eq!(needs(&["{{ profile | tojson }}"]), ProfileNeeds::All);
        assert_eq!(needs(&["{{ profile.get('x') }}"]), ProfileNeeds::All);
        assert_eq!(needs(&["{{ profile[key] }}"]), ProfileNeeds::All);
        assert!(needs(&["{{ profile }}"]).wants("anything"));
    }
}
