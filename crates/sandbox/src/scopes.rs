//! Xero's OAuth scopes as data: which exist, which new apps may no longer request, and whether a
//! granted set covers an API operation.
//!
//! Apps created on or after 2 March 2026 may only use granular scopes; the broad
//! `accounting.transactions` and `accounting.reports.read` are refused for them. An operation is
//! covered by either its broad or its granular scope; the `.read` form allows GET only.

use chrono::NaiveDate;

/// Identity scopes, always allowed.
pub const IDENTITY: &[&str] = &["openid", "profile", "email", "offline_access"];

/// Broad scopes that apps created from [`GRANULAR_ONLY_FROM`] may not request.
pub const BROAD_RETIRED: &[&str] = &[
    "accounting.transactions",
    "accounting.transactions.read",
    "accounting.reports.read",
];

/// Accounting (and neighbouring API) scopes every app may request.
pub const CURRENT: &[&str] = &[
    "accounting.settings",
    "accounting.settings.read",
    "accounting.contacts",
    "accounting.contacts.read",
    "accounting.attachments",
    "accounting.attachments.read",
    "accounting.budgets.read",
    "accounting.journals.read",
    "accounting.reports.tenninetynine.read",
    "accounting.invoices",
    "accounting.invoices.read",
    "accounting.payments",
    "accounting.payments.read",
    "accounting.banktransactions",
    "accounting.banktransactions.read",
    "accounting.manualjournals",
    "accounting.manualjournals.read",
    "accounting.reports.aged.read",
    "accounting.reports.balancesheet.read",
    "accounting.reports.banksummary.read",
    "accounting.reports.budgetsummary.read",
    "accounting.reports.executivesummary.read",
    "accounting.reports.profitandloss.read",
    "accounting.reports.trialbalance.read",
    "accounting.reports.taxreports.read",
    "files",
    "files.read",
    "assets",
    "assets.read",
    "projects",
    "projects.read",
];

/// The first creation date whose apps are limited to granular scopes.
pub const GRANULAR_ONLY_FROM: NaiveDate = match NaiveDate::from_ymd_opt(2026, 3, 2) {
    Some(date) => date,
    None => panic!("valid constant date"),
};

/// Why a requested scope cannot be granted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeProblem {
    /// The scope does not exist.
    #[error("the scope '{0}' is not a Xero scope")]
    Unknown(String),
    /// A broad scope requested by an app created from 2 March 2026.
    #[error("the scope '{0}' is a broad scope; apps created on or after 2 March 2026 must request granular scopes instead")]
    RetiredForNewApps(String),
}

/// Checks every requested scope against what an app created on `app_created` may use.
pub fn check_requested(requested: &[String], app_created: NaiveDate) -> Result<(), ScopeProblem> {
    for scope in requested {
        let s = scope.as_str();
        if BROAD_RETIRED.contains(&s) {
            if app_created >= GRANULAR_ONLY_FROM {
                return Err(ScopeProblem::RetiredForNewApps(scope.clone()));
            }
        } else if !IDENTITY.contains(&s) && !CURRENT.contains(&s) {
            return Err(ScopeProblem::Unknown(scope.clone()));
        }
    }
    Ok(())
}

/// The scopes that can authorise one API operation: either the broad or the granular one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub broad: &'static str,
    pub granular: &'static str,
}

impl Access {
    pub const fn new(broad: &'static str, granular: &'static str) -> Self {
        Self { broad, granular }
    }

    /// Whether `granted` allows this access for a read (`GET`) or a write.
    pub fn covered_by(&self, granted: &[String], read: bool) -> bool {
        [self.broad, self.granular].iter().any(|needed| {
            granted.iter().any(|g| {
                g == needed
                    || (read && g.strip_suffix(".read") == Some(needed))
                    || (read && needed.strip_suffix(".read") == Some(g.as_str()))
            })
        })
    }

    /// The scope to name in an `insufficient_scope` challenge.
    pub fn describe(&self, read: bool) -> String {
        if read && !self.granular.ends_with(".read") {
            format!("{}.read {}.read", self.granular, self.broad)
        } else {
            format!("{} {}", self.granular, self.broad)
        }
    }
}

/// Splits a space-separated scope parameter.
pub fn split(scope: &str) -> Vec<String> {
    scope.split_whitespace().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(s: &str) -> Vec<String> {
        split(s)
    }

    #[test]
    fn new_apps_may_not_request_broad_scopes_but_old_apps_may() {
        let new_app = NaiveDate::from_ymd_opt(2026, 3, 2).expect("date");
        let old_app = NaiveDate::from_ymd_opt(2026, 3, 1).expect("date");
        let broad = scopes("openid offline_access accounting.transactions");
        assert_eq!(
            check_requested(&broad, new_app),
            Err(ScopeProblem::RetiredForNewApps(
                "accounting.transactions".into()
            ))
        );
        assert!(check_requested(&broad, old_app).is_ok());
        assert!(check_requested(&scopes("accounting.invoices offline_access"), new_app).is_ok());
        assert!(matches!(
            check_requested(&scopes("accounting.everything"), old_app),
            Err(ScopeProblem::Unknown(_))
        ));
    }

    #[test]
    fn read_scopes_cover_reads_only_and_either_form_counts() {
        let invoices = Access::new("accounting.transactions", "accounting.invoices");
        assert!(invoices.covered_by(&scopes("accounting.invoices.read"), true));
        assert!(!invoices.covered_by(&scopes("accounting.invoices.read"), false));
        assert!(invoices.covered_by(&scopes("accounting.transactions"), false));
        assert!(invoices.covered_by(&scopes("accounting.transactions.read"), true));
        assert!(!invoices.covered_by(&scopes("accounting.contacts"), true));
        let pnl = Access::new(
            "accounting.reports.read",
            "accounting.reports.profitandloss.read",
        );
        assert!(pnl.covered_by(&scopes("accounting.reports.profitandloss.read"), true));
        assert!(pnl.covered_by(&scopes("accounting.reports.read"), true));
        assert!(!pnl.covered_by(&scopes("accounting.reports.balancesheet.read"), true));
    }
}
