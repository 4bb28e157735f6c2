//! After a downstream 401: the token to retry with, renewed at most once per client per
//! [`REJECTION_RENEWAL_INTERVAL`], once for the fleet with a shared cache (see the module
//! documentation of [`super`]).

use std::sync::Arc;

use tracing::Instrument as _;

use super::{
    ClientEntry, PreparedToken, REJECTION_RENEWAL_INTERVAL, Target, TokenManager,
    TokenRequestParams, Want,
};
use crate::client::credentials::AccessToken;
use crate::client::error::TokenError;

impl TokenManager {
    /// See [`ManagedClient::renew_rejected`].
    pub(super) async fn renew_rejected(
        &self,
        entry: &Arc<ClientEntry>,
        params: &TokenRequestParams,
        rejected: &AccessToken,
    ) -> Result<Option<Arc<PreparedToken>>, TokenError> {
        self.renew_rejected_target(&Self::target(entry, params), rejected)
            .await
    }

    /// [`Self::renew_rejected`] for any target (an exchange's too): an `oauth.token` span
    /// (`renewal`).
    pub(super) async fn renew_rejected_target(
        &self,
        target: &Target<'_>,
        rejected: &AccessToken,
    ) -> Result<Option<Arc<PreparedToken>>, TokenError> {
        let span = crate::trace::token(&target.entry.name);
        crate::trace::cache(&span, "renewal");
        self.renew_rejected_in_span(target, rejected)
            .instrument(span)
            .await
    }

    async fn renew_rejected_in_span(
        &self,
        target: &Target<'_>,
        rejected: &AccessToken,
    ) -> Result<Option<Arc<PreparedToken>>, TokenError> {
        let entry = target.entry;
        let name = entry.name.as_str();
        let now = self.now();
        if let Some(current) = self.cached(&target.key, now).await
            && current.access_token != *rejected
        {
            return Ok(Some(Arc::new(PreparedToken::new(&current)?)));
        }
        let slot = self.slot(&target.key);
        if let Some(error) = slot.recent_failure(now) {
            return Err(error);
        }
        // The fleet's claim (a shared cache's tombstone): when another process renews this
        // token, take its token when it is there, and renew nothing here.
        let renewing_here = slot.flight().is_some();
        if !renewing_here && !slot.rejection_renewal_due(now) {
            tracing::debug!(
                client = name,
                "401 from downstream; renewal skipped (renewed after a 401 less than 30 s ago)"
            );
            return Ok(None);
        }
        if !renewing_here
            && !self
                .0
                .cache
                .claim_rejection(&target.key, rejected, REJECTION_RENEWAL_INTERVAL)
                .await
        {
            tracing::debug!(
                client = name,
                "401 from downstream; another replica renews this token"
            );
            return match self.cached(&target.key, self.now()).await {
                Some(current) if current.access_token != *rejected => {
                    Ok(Some(Arc::new(PreparedToken::new(&current)?)))
                }
                _ => Ok(None),
            };
        }
        // Join the renewal in flight, or start one if the interval allows: decided under
        // the slot's lock, so that of many callers rejected at once, one starts the
        // renewal and the others join it (none finds "renewed a moment ago" and gives up).
        let flight = {
            let mut current = slot.flight();
            match &*current {
                Some(flight) => flight.clone(),
                None => {
                    // Renewed meanwhile: a flight promotes its token before it frees the
                    // slot, so the hot token shows it (the default key's).
                    if target.key == entry.default_key
                        && let Some(hot) = target.entry.hot.load_full()
                        && hot.token != *rejected
                        && now < hot.cached_until_ms
                    {
                        return Ok(Some(hot));
                    }
                    if !slot.take_rejection_renewal(now) {
                        tracing::debug!(
                            client = name,
                            "401 from downstream; renewal skipped (renewed after a 401 less than 30 s ago)"
                        );
                        return Ok(None);
                    }
                    tracing::debug!(client = name, "token renewal forced");
                    self.start(
                        &mut current,
                        target,
                        &slot,
                        Want::Replace(Some(rejected.clone())),
                    )
                }
            }
        };
        let renewed = flight.wait().await?;
        if renewed.access_token == *rejected {
            return Ok(None);
        }
        Ok(Some(Arc::new(PreparedToken::new(&renewed)?)))
    }
}
