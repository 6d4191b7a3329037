//! Permission names: Django's `app_label.codename`.

/// Longest codename (Django's `Permission.codename` is a 100-character field).
const MAX_CODENAME: usize = 100;

/// Checks a permission name against `^[a-z][a-z0-9_]*\.[a-z0-9_]{1,100}$`.
/// The filter joins permissions with commas into a header and marks a
/// superuser's "all" with `*`, so neither may ever be part of a name.
pub fn check_permission(name: &str) -> Result<(), &'static str> {
    let Some((app_label, codename)) = name.split_once('.') else {
        return Err("must be app_label.codename (one dot)");
    };
    let mut app = app_label.chars();
    if !app.next().is_some_and(|c| c.is_ascii_lowercase()) {
        return Err("the app label must start with a lowercase letter a-z");
    }
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    if !app.all(allowed) {
        return Err("the app label may only contain a-z, 0-9 and _");
    }
    if codename.is_empty() || codename.len() > MAX_CODENAME {
        return Err("the codename must be 1 to 100 characters");
    }
    if !codename.chars().all(allowed) {
        return Err("the codename may only contain a-z, 0-9 and _");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_permission;

    #[test]
    fn django_names_pass() {
        let longest = format!("app.{}", "c".repeat(100));
        for name in [
            "widgets.change_widget",
            "a.b",
            "auth2.view_user",
            "my_app.x_1",
            "a_.0",
            longest.as_str(),
        ] {
            assert_eq!(check_permission(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn everything_else_is_refused() {
        let too_long = format!("app.{}", "c".repeat(101));
        for name in [
            "",
            "*",
            "app.*",
            "*.view",
            "app",
            "app.",
            ".view",
            "App.view",
            "app.View",
            "1app.view",
            "_app.view",
            "app.a.b",
            "app.view,app.edit",
            "app-x.view",
            "app.vi ew",
            "app.view\n",
            "äpp.view",
            too_long.as_str(),
        ] {
            assert!(check_permission(name).is_err(), "{name:?}");
        }
    }
}
