//! tmp
pub mod expression;
pub mod import;
pub mod item;
pub mod run_data;
pub mod workflow;
pub mod nodes {
    pub mod webhook {
        #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
        pub struct WebhookResponse;
    }
}
