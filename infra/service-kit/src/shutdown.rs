//! Graceful shutdown for services built on this crate: a future that resolves on SIGINT
//! (Ctrl-C) or SIGTERM (what container runtimes and `kill` send), for
//! `axum::serve(..).with_graceful_shutdown(..)`.

/// Resolves on SIGINT or SIGTERM. If a handler cannot be installed, that signal is not
/// waited for (the other still is).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        () = term => tracing::info!("SIGTERM received, shutting down"),
    }
}
