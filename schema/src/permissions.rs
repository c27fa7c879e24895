//! Who may do what to a project: the one rule the API, the web UI and `/copr` commands share.
//!
//! A project's owner is a user (`alice`) or a group (`@fedora-ruby`). The owner, every member of
//! the owning group and the instance's admins may do everything; anyone else only what a
//! project admin granted them ([`Role`]). Reading is open to all and needs no rule.

/// A permission a project's admin can grant to another user (Copr's `builder` and `admin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Submit, resubmit and cancel builds.
    Builder,
    /// Also edit and delete the project and grant roles.
    Admin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Builder => "builder",
            Role::Admin => "admin",
        }
    }

    pub fn from_name(name: &str) -> Option<Role> {
        match name {
            "builder" => Some(Role::Builder),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// What a caller wants to do to a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Submit or cancel builds, also of the project's added packages.
    Build,
    /// Edit or delete the project; add, edit and delete its packages (their sources are part
    /// of the project's configuration, as in Copr).
    Administer,
}

/// The facts about a caller that decide what they may do to one project.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub name: &'a str,
    pub instance_admin: bool,
    /// The groups the caller is in, without `@`.
    pub groups: &'a [String],
    /// What the project's admins granted the caller, if anything.
    pub granted: Option<Role>,
}

/// Whether `caller` may do `action` to a project owned by `owner` (`name` or `@group`).
pub fn permits(caller: &Caller<'_>, owner: &str, action: Action) -> bool {
    if caller.instance_admin || owner == caller.name {
        return true;
    }
    if let Some(group) = owner.strip_prefix('@')
        && caller.groups.iter().any(|g| g == group)
    {
        return true;
    }
    match (caller.granted, action) {
        (Some(Role::Admin), _) => true,
        (Some(Role::Builder), Action::Build) => true,
        (Some(Role::Builder), Action::Administer) | (None, _) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_may_do_what() {
        let groups = vec!["ruby".to_owned()];
        let caller = |granted, instance_admin| Caller {
            name: "alice",
            instance_admin,
            groups: &groups,
            granted,
        };
        let table = [
            // (owner, granted, instance admin, action, allowed)
            ("alice", None, false, Action::Administer, true),
            ("@ruby", None, false, Action::Administer, true),
            ("@python", None, false, Action::Build, false),
            ("bob", None, false, Action::Build, false),
            ("bob", Some(Role::Builder), false, Action::Build, true),
            ("bob", Some(Role::Builder), false, Action::Administer, false),
            ("bob", Some(Role::Admin), false, Action::Administer, true),
            ("bob", None, true, Action::Administer, true),
            // A user named like a group is not its member.
            ("ruby", None, false, Action::Build, false),
        ];
        for (owner, granted, admin, action, allowed) in table {
            assert_eq!(
                permits(&caller(granted, admin), owner, action),
                allowed,
                "{owner} {granted:?} admin={admin} {action:?}"
            );
        }
    }
}
