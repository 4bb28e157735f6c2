//! Service-to-service authorization with OAuth 2.0 client credentials.
#![warn(missing_docs)]
