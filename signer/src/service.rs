//! The signer as a service of its own (`ferrocopr signer`): the keys live only on its host, and
//! the backend reaches it over HTTP through [`crate::remote::RemoteSigner`] (seed steps 6 and
//! 12, where SRPMs, RPMs and `repomd.xml` get signed).
//!
//! - `POST /keys/{owner}/{project}`: makes the project's key unless it has one (idempotent);
//!   answers its public key, ASCII-armored.
//! - `GET /keys/{owner}/{project}/pubkey.gpg`: the public key; 404 while there is none.
//! - `POST /keys/{owner}/{project}/sign`: the body is the bytes to sign (an RPM header or a
//!   `repomd.xml`, at most [`MAX_SIGNED_BYTES`]); answers one binary OpenPGP signature packet.
//!
//! Every request carries `Authorization: Bearer <token>`; the callers file says which projects
//! each token may use (401 without a known token, 403 for a project it may not use). No
//! endpoint returns secret key material.

use crate::callers::{Caller, Callers};
use crate::keys::{KeyPolicy, KeyStore, load_or_create_kek};
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ferrocopr_schema::ProjectRef;
use ferrocopr_schema::model::{is_valid_name, is_valid_owner};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

/// The largest body `sign` takes. RPM headers are kilobytes to a few megabytes (a package with
/// tens of thousands of files); `repomd.xml` is a few kilobytes. Whole packages are never sent.
pub const MAX_SIGNED_BYTES: usize = 16 * 1024 * 1024;

/// What `ferrocopr signer` runs with.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Where the projects' keys are kept.
    pub keys_dir: PathBuf,
    /// The domain in the keys' user ids.
    pub domain: String,
    /// The key-encryption key's file; made on first start when missing.
    pub kek_file: PathBuf,
    /// The callers file (see [`crate::callers`]).
    pub callers_file: PathBuf,
    /// How new keys are made and renewed.
    pub policy: KeyPolicy,
}

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct ServiceState {
    pub store: Arc<KeyStore>,
    pub callers: Arc<Callers>,
}

/// Serves the signer on `listener` until `shutdown` completes.
pub async fn run(
    config: ServiceConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let callers = Callers::load(&config.callers_file)?;
    let kek = load_or_create_kek(&config.kek_file)?;
    let store = KeyStore::with_policy(config.keys_dir, config.domain, kek, config.policy);
    let state = ServiceState {
        store: Arc::new(store),
        callers: Arc::new(callers),
    };
    tracing::info!(address = %listener.local_addr()?, "the signer is serving");
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// The service's routes, for [`run`] and for tests on port 0.
pub fn app(state: ServiceState) -> Router {
    Router::new()
        .route("/keys/{owner}/{project}", post(create_key))
        .route("/keys/{owner}/{project}/pubkey.gpg", get(public_key))
        .route("/keys/{owner}/{project}/sign", post(sign))
        .layer(DefaultBodyLimit::max(MAX_SIGNED_BYTES))
        .with_state(state)
}

/// What a request gets instead of what it asked for.
#[derive(Debug)]
enum ServiceError {
    Unauthenticated,
    Forbidden(String, ProjectRef),
    BadName,
    NoKey(ProjectRef),
    TooLarge,
    BadBody(BytesRejection),
    Internal(anyhow::Error),
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        let (status, text) = match self {
            ServiceError::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "missing or unknown bearer token\n".to_owned(),
            ),
            ServiceError::Forbidden(caller, project) => (
                StatusCode::FORBIDDEN,
                format!("caller {caller} may not use the key of {project}\n"),
            ),
            ServiceError::BadName => (
                StatusCode::BAD_REQUEST,
                "owner and project must be names (letters, digits, '-', '_', '.')\n".to_owned(),
            ),
            ServiceError::NoKey(project) => (
                StatusCode::NOT_FOUND,
                format!("{project} has no key yet; POST /keys/{project} makes it\n"),
            ),
            ServiceError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "at most {MAX_SIGNED_BYTES} bytes are signed: send the RPM header or the \
                     repomd.xml, not a whole package\n"
                ),
            ),
            ServiceError::BadBody(rejection) => return rejection.into_response(),
            ServiceError::Internal(error) => {
                let error = format!("{error:#}");
                tracing::error!(error = %error, "signer request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error\n".to_owned(),
                )
            }
        };
        (status, text).into_response()
    }
}

/// A caller whose bearer token is in the callers file.
struct Authenticated(Caller);

impl FromRequestParts<ServiceState> for Authenticated {
    type Rejection = ServiceError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ServiceState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ServiceError::Unauthenticated)?;
        state
            .callers
            .authenticate(token.trim())
            .map(|caller| Authenticated(caller.clone()))
            .ok_or(ServiceError::Unauthenticated)
    }
}

/// The project of the path, if the caller may use it.
fn allowed(
    caller: &Caller,
    (owner, project): (String, String),
) -> Result<ProjectRef, ServiceError> {
    if !is_valid_owner(&owner) || !is_valid_name(&project) {
        return Err(ServiceError::BadName);
    }
    let project = ProjectRef { owner, project };
    if !caller.may_use(&project) {
        tracing::warn!(caller = %caller.name, %project, "refused: project not allowed");
        return Err(ServiceError::Forbidden(caller.name.clone(), project));
    }
    Ok(project)
}

/// Runs key work off the async threads: RSA key generation takes seconds, a signature
/// milliseconds.
async fn blocking<T: Send + 'static>(
    state: &ServiceState,
    work: impl FnOnce(&KeyStore) -> anyhow::Result<T> + Send + 'static,
) -> Result<T, ServiceError> {
    let store = Arc::clone(&state.store);
    tokio::task::spawn_blocking(move || work(&store))
        .await
        .map_err(|e| ServiceError::Internal(e.into()))?
        .map_err(ServiceError::Internal)
}

fn armored_key(key: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/pgp-keys")], key).into_response()
}

async fn create_key(
    State(state): State<ServiceState>,
    Authenticated(caller): Authenticated,
    Path(path): Path<(String, String)>,
) -> Result<Response, ServiceError> {
    let project = allowed(&caller, path)?;
    let key = blocking(&state, move |store| store.public_key(&project)).await?;
    Ok(armored_key(key))
}

async fn public_key(
    State(state): State<ServiceState>,
    Authenticated(caller): Authenticated,
    Path(path): Path<(String, String)>,
) -> Result<Response, ServiceError> {
    let project = allowed(&caller, path)?;
    let key = blocking(&state, move |store| {
        if store.has_key(&project)? {
            Ok(Ok(store.public_key(&project)?))
        } else {
            Ok(Err(ServiceError::NoKey(project)))
        }
    })
    .await??;
    Ok(armored_key(key))
}

async fn sign(
    State(state): State<ServiceState>,
    Authenticated(caller): Authenticated,
    Path(path): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ServiceError> {
    let project = allowed(&caller, path)?;
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(ServiceError::TooLarge);
        }
        Err(rejection) => return Err(ServiceError::BadBody(rejection)),
    };
    tracing::debug!(caller = %caller.name, %project, bytes = body.len(), "signing");
    let signature = blocking(&state, move |store| store.sign(&project, &body)).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/pgp-signature")],
        signature,
    )
        .into_response())
}
