//! The Xero node: every resource of the catalogue with its operations, run through the
//! rate-limited Xero client. [`params`] reads a node's parameters; [`run`] does the work for a
//! batch of items. The adapter to the workflow engine lives beside them.

pub mod docs;
pub mod n8n;
pub mod node;
pub mod params;
pub mod run;
pub mod triggers;

pub use node::{XeroHost, XeroNode};
pub use params::XeroParams;
pub use run::{run, BinaryIn, BinaryOut, Input, Outcome, Produced, XeroConnection};
