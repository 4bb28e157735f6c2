//! The weather API: the template's example resource, protected by two scopes.
//!
//! `GET /weatherforecast` returns five days from today. Values are derived from the date,
//! so the same day always gives the same forecast (testable) and stay within -20..55 °C
//! like the ASP.NET template. `POST /weatherforecast` validates a new forecast and echoes it
//! back with its Fahrenheit value: it shows a second scope, not persistence.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shared_auth::problem;
use shared_auth::server::Principal;
use time::Date;
use time::macros::format_description;
use utoipa::ToSchema;

/// Scope needed to read forecasts.
pub const READ_SCOPE: &str = "MyService/weather_read";
/// Scope needed to add forecasts.
pub const WRITE_SCOPE: &str = "MyService/weather_write";

const SUMMARIES: [&str; 10] = [
    "Freezing",
    "Bracing",
    "Chilly",
    "Cool",
    "Mild",
    "Warm",
    "Balmy",
    "Hot",
    "Sweltering",
    "Scorching",
];

/// One day's forecast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WeatherForecast {
    /// The day, `YYYY-MM-DD`.
    #[schema(example = "2026-11-22", format = Date)]
    pub date: String,
    /// Temperature in degrees Celsius.
    #[schema(example = 21)]
    pub temperature_c: i32,
    /// Temperature in degrees Fahrenheit (derived).
    #[schema(example = 69)]
    pub temperature_f: i32,
    /// A word for it.
    #[schema(example = "Mild")]
    pub summary: String,
}

/// A forecast to add.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewForecast {
    /// The day, `YYYY-MM-DD`.
    #[schema(example = "2026-11-23", format = Date)]
    pub date: String,
    /// Temperature in degrees Celsius, -90 to 60.
    #[schema(example = 18, minimum = -90, maximum = 60)]
    pub temperature_c: i32,
    /// 1 to 64 characters.
    #[schema(example = "Cool", min_length = 1, max_length = 64)]
    pub summary: String,
}

fn fahrenheit(celsius: i32) -> i32 {
    32 + (f64::from(celsius) / 0.5556) as i32
}

/// The forecast for `date`, derived from the date alone.
pub fn forecast_for(date: Date) -> WeatherForecast {
    let day = i64::from(date.to_julian_day());
    let temperature_c = (day * 7919 % 75 + 75) % 75 - 20;
    let bucket = usize::try_from((temperature_c + 20) * 10 / 75).unwrap_or(0);
    let format = format_description!("[year]-[month]-[day]");
    WeatherForecast {
        date: date.format(&format).unwrap_or_default(),
        temperature_c: temperature_c as i32,
        temperature_f: fahrenheit(temperature_c as i32),
        summary: SUMMARIES[bucket.min(SUMMARIES.len() - 1)].to_owned(),
    }
}

/// Forecasts for the next five days.
#[utoipa::path(
    get,
    path = "/weatherforecast",
    tag = "weather",
    security(("oauth2" = ["MyService/weather_read"])),
    responses(
        (status = 200, description = "Five forecasts, from today", body = [WeatherForecast]),
        (status = 401, description = "No or invalid access token (WWW-Authenticate: Bearer)", content_type = "application/problem+json"),
        (status = 403, description = "Token lacks MyService/weather_read (insufficient_scope)", content_type = "application/problem+json"),
    )
)]
// The handler in the trace (no arguments recorded: they hold the caller's claims).
#[tracing::instrument(name = "weather.list", level = "debug", skip_all)]
pub async fn list(principal: Principal) -> Json<Vec<WeatherForecast>> {
    // A user's call (through a BFF's user session) and a machine's call differ here: a
    // user token's subject is the user, a client-credentials token's is the client.
    tracing::info!(
        client_id = principal.client_id(),
        subject = principal.subject().unwrap_or("-"),
        caller = if principal
            .subject()
            .is_some_and(|s| s != principal.client_id())
        {
            "user"
        } else {
            "machine"
        },
        "forecasts read"
    );
    Json(five_days())
}

/// The five forecasts from today.
pub fn five_days() -> Vec<WeatherForecast> {
    let today = time::OffsetDateTime::now_utc().date();
    let days = (0..5).filter_map(|i| today.checked_add(time::Duration::days(i)));
    days.map(forecast_for).collect()
}

/// JSON body extractor whose rejections are `application/problem+json`.
pub struct ProblemJson<T>(pub T);

impl<S, T> FromRequest<S> for ProblemJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(ProblemJson(value)),
            Err(rejection) => {
                Err(problem(rejection.status(), &rejection.body_text()).into_response())
            }
        }
    }
}

/// Adds a forecast (validated and echoed back).
#[utoipa::path(
    post,
    path = "/weatherforecast",
    tag = "weather",
    security(("oauth2" = ["MyService/weather_write"])),
    request_body = NewForecast,
    responses(
        (status = 201, description = "The forecast as stored", body = WeatherForecast),
        (status = 401, description = "No or invalid access token", content_type = "application/problem+json"),
        (status = 403, description = "Token lacks MyService/weather_write (insufficient_scope)", content_type = "application/problem+json"),
        (status = 422, description = "Invalid forecast", content_type = "application/problem+json"),
    )
)]
// The handler in the trace (no arguments recorded: they hold the caller's claims).
#[tracing::instrument(name = "weather.create", level = "debug", skip_all)]
pub async fn create(principal: Principal, ProblemJson(new): ProblemJson<NewForecast>) -> Response {
    let format = format_description!("[year]-[month]-[day]");
    let Ok(date) = Date::parse(&new.date, &format) else {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "date must be a calendar date YYYY-MM-DD",
        )
        .into_response();
    };
    if !(-90..=60).contains(&new.temperature_c) {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "temperatureC must be between -90 and 60",
        )
        .into_response();
    }
    let summary = new.summary.trim();
    if summary.is_empty() || summary.chars().count() > 64 {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "summary must be 1 to 64 characters",
        )
        .into_response();
    }
    tracing::debug!(client_id = principal.client_id(), date = %new.date, "forecast added");
    let created = WeatherForecast {
        date: date.format(&format).unwrap_or_default(),
        temperature_c: new.temperature_c,
        temperature_f: fahrenheit(new.temperature_c),
        summary: summary.to_owned(),
    };
    (StatusCode::CREATED, Json(created)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forecasts_are_bounded_and_stable() {
        let mut date = time::macros::date!(2026 - 01 - 01);
        for _ in 0..400 {
            let f = forecast_for(date);
            assert!((-20..55).contains(&f.temperature_c), "{f:?}");
            assert_eq!(f, forecast_for(date));
            date = date.next_day().unwrap();
        }
        assert_eq!(fahrenheit(0), 32);
        assert_eq!(fahrenheit(100), 211);
    }
}
