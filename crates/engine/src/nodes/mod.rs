//! The core nodes. Each lives in the module for its kind; [`register_core`] adds them all to a
//! registry. Integrations do the same from their own crates with their own nodes.

pub mod code;
pub mod condition;
pub mod flow;
pub mod http;
pub mod merge;
pub mod transform;
pub mod trigger;
pub mod webhook;

use crate::node::NodeRegistry;

/// Registers every core node.
pub fn register_core(registry: &mut NodeRegistry) {
    registry.register(trigger::ManualTriggerNode);
    registry.register(trigger::ScheduleTriggerNode);
    registry.register(trigger::ErrorTriggerNode);
    registry.register(trigger::ExecuteWorkflowTriggerNode);
    registry.register(webhook::WebhookNode);
    registry.register(webhook::RespondToWebhookNode);
    registry.register(transform::SetNode);
    registry.register(transform::NoOpNode);
    registry.register(transform::SplitOutNode);
    registry.register(transform::AggregateNode);
    registry.register(transform::LimitNode);
    registry.register(transform::RemoveDuplicatesNode);
    registry.register(transform::SortNode);
    registry.register(condition::IfNode);
    registry.register(condition::FilterNode);
    registry.register(condition::SwitchNode);
    registry.register(merge::MergeNode);
    registry.register(code::CodeNode);
    registry.register(http::HttpRequestNode);
    registry.register(flow::WaitNode);
    registry.register(flow::ExecuteWorkflowNode);
}
