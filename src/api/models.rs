//! `GET /v1/models`: static, answered from the configuration. OpenWebUI calls it often, so it
//! never starts codex.

use std::sync::Arc;

use poem_openapi::{param::Path, payload::Json, OpenApi};

use super::{
    auth::Authorized,
    error::ApiError,
    response::{Model, ModelList},
    ApiTags, AppState,
};

pub struct ModelsApi {
    pub state: Arc<AppState>,
}

#[OpenApi(tag = "ApiTags::Models")]
impl ModelsApi {
    /// List models
    ///
    /// `codex-local` (codex's configured model, or `CODEX_MODEL`) and every id in `CODEX_MODELS`.
    #[oai(path = "/v1/models", method = "get", operation_id = "listModels")]
    async fn list(&self, _auth: Authorized) -> Result<Json<ModelList>, ApiError> {
        let data = self
            .state
            .config
            .model_ids(&self.state.backend().models())
            .into_iter()
            .map(|id| Model {
                id,
                object: "model".into(),
                created: self.state.started_at,
                owned_by: "codex".into(),
            })
            .collect();
        Ok(Json(ModelList {
            object: "list".into(),
            data,
        }))
    }

    /// Retrieve a model
    ///
    /// One of the models `GET /v1/models` lists, or a 404 `model_not_found`.
    #[oai(
        path = "/v1/models/:model",
        method = "get",
        operation_id = "retrieveModel"
    )]
    async fn retrieve(
        &self,
        _auth: Authorized,
        model: Path<String>,
    ) -> Result<Json<Model>, ApiError> {
        let listed = self
            .state
            .config
            .model_ids(&self.state.backend().models())
            .into_iter()
            .find(|id| *id == model.0);
        match listed {
            Some(id) => Ok(Json(Model {
                id,
                object: "model".into(),
                created: self.state.started_at,
                owned_by: "codex".into(),
            })),
            None => Err(crate::error::ProxyError::ModelNotFound(model.0).into()),
        }
    }
}
