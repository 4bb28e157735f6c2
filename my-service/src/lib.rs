//! my-service (built in a later issue).
