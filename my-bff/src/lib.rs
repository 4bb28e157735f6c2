//! my-bff (built in a later issue).
