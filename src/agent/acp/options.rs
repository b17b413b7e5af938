//! A session's modes, models and configuration options as the agent tells them (`session/new`
//! and `session/load` answers, `current_mode_update`, `config_option_update`), and the call
//! that changes one: `session/set_mode` / `session/set_model` where the agent lists modes /
//! models, else `session/set_config_option` on its option of that category.

use serde_json::{json, Value};

use crate::agent::AgentOptions;

/// Where a choice (mode or model) comes from.
#[derive(Clone, Debug, Default, PartialEq)]
struct Choices {
    ids: Vec<String>,
    current: Option<String>,
    /// Listed by `modes` / `models` (their own set method); else by this config option.
    native: bool,
    option: Option<String>,
}

impl Choices {
    fn call(&self, kind: &str, session: &str, id: &str) -> Option<(&'static str, Value)> {
        if self.native {
            let (method, key) = match kind {
                "mode" => ("session/set_mode", "modeId"),
                _ => ("session/set_model", "modelId"),
            };
            return Some((method, json!({"sessionId": session, key: id})));
        }
        let option = self.option.as_ref()?;
        Some((
            "session/set_config_option",
            json!({"sessionId": session, "configId": option, "value": id}),
        ))
    }
}

/// One session's options.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SessionOptions {
    modes: Choices,
    models: Choices,
    /// The mode the session started in: what the agent's name without a mode means.
    pub default_mode: Option<String>,
    /// The model it started with: what the chat's default model means.
    pub default_model: Option<String>,
}

fn ids(list: Option<&Value>, key: &str) -> Vec<String> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get(key).and_then(Value::as_str).map(str::to_string))
        .collect()
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

impl SessionOptions {
    /// The options of a `session/new` or `session/load` answer.
    pub fn session(&mut self, v: &Value) {
        if let Some(m) = v.get("modes").filter(|m| m.is_object()) {
            self.modes = Choices {
                ids: ids(m.get("availableModes"), "id"),
                current: text(m, "currentModeId"),
                native: true,
                option: None,
            };
        }
        if let Some(m) = v.get("models").filter(|m| m.is_object()) {
            self.models = Choices {
                ids: ids(m.get("availableModels"), "modelId"),
                current: text(m, "currentModelId"),
                native: true,
                option: None,
            };
        }
        self.config_options(v.get("configOptions"));
        if self.default_mode.is_none() {
            self.default_mode = self.modes.current.clone();
        }
        if self.default_model.is_none() {
            self.default_model = self.models.current.clone();
        }
    }

    /// Config options of category `mode` / `model` stand in for the lists an agent lacks.
    fn config_options(&mut self, list: Option<&Value>) {
        for o in list.and_then(Value::as_array).into_iter().flatten() {
            let target = match o.get("category").and_then(Value::as_str) {
                Some("mode") => &mut self.modes,
                Some("model") => &mut self.models,
                _ => continue,
            };
            let current = text(o, "currentValue");
            if target.native {
                // The same choice told twice: only its current value is news.
                if current.is_some() {
                    target.current = current;
                }
                continue;
            }
            *target = Choices {
                ids: ids(o.get("options"), "value"),
                current,
                native: false,
                option: text(o, "id"),
            };
        }
    }

    /// A `session/update`; whether it changed anything.
    pub fn update(&mut self, u: &Value) -> bool {
        let before = self.clone();
        match u.get("sessionUpdate").and_then(Value::as_str) {
            Some("current_mode_update") => {
                if let Some(m) = text(u, "currentModeId") {
                    self.modes.current = Some(m);
                }
            }
            Some("config_option_update") => self.config_options(u.get("configOptions")),
            _ => return false,
        }
        *self != before
    }

    /// A set call's success: the new current value.
    pub fn chosen(&mut self, kind: &str, id: &str) {
        let c = if kind == "mode" {
            &mut self.modes
        } else {
            &mut self.models
        };
        c.current = Some(id.to_string());
    }

    pub fn mode(&self) -> Option<&str> {
        self.modes.current.as_deref()
    }

    pub fn model(&self) -> Option<&str> {
        self.models.current.as_deref()
    }

    pub fn has_model(&self, id: &str) -> bool {
        self.models.ids.iter().any(|m| m == id)
    }

    pub fn has_mode(&self, id: &str) -> bool {
        self.modes.ids.iter().any(|m| m == id)
    }

    /// The request that sets a mode (`kind` "mode") or model; `None` when the agent offers no
    /// way to.
    pub fn set_call(&self, kind: &str, session: &str, id: &str) -> Option<(&'static str, Value)> {
        match kind {
            "mode" => self.modes.call(kind, session, id),
            _ => self.models.call(kind, session, id),
        }
    }

    /// What the editor offers: modes as `agent:mode`, the agent's model ids.
    pub fn view(&self, agent: &str) -> AgentOptions {
        AgentOptions {
            modes: self
                .modes
                .ids
                .iter()
                .map(|m| format!("{agent}:{m}"))
                .collect(),
            mode: self.modes.current.clone(),
            models: self.models.ids.clone(),
            model: self.models.current.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_models_and_config_options_and_how_to_set_them() {
        // qwen: native lists and the same choices again as config options.
        let mut o = SessionOptions::default();
        o.session(&json!({
            "sessionId": "s",
            "modes": {"currentModeId": "default", "availableModes": [{"id": "plan", "name": "Plan"}, {"id": "default", "name": "Default"}]},
            "models": {"currentModelId": "m1", "availableModels": [{"modelId": "m1", "name": "M1"}, {"modelId": "m2", "name": "M2"}]},
            "configOptions": [{"id": "mode", "category": "mode", "type": "select", "currentValue": "default", "options": [{"value": "plan"}]}],
        }));
        let v = o.view("qwen");
        assert_eq!(v.modes, ["qwen:plan", "qwen:default"]);
        assert_eq!((v.mode.as_deref(), v.models.len()), (Some("default"), 2));
        assert_eq!(
            o.set_call("mode", "s", "plan"),
            Some((
                "session/set_mode",
                json!({"sessionId": "s", "modeId": "plan"})
            ))
        );
        assert_eq!(
            o.set_call("model", "s", "m2").map(|c| c.0),
            Some("session/set_model")
        );
        assert!(o.update(&json!({"sessionUpdate": "current_mode_update", "currentModeId": "plan"})));
        assert_eq!(
            (o.mode(), o.default_mode.as_deref()),
            (Some("plan"), Some("default"))
        );
        assert!(!o.update(&json!({"sessionUpdate": "agent_message_chunk"})));

        // Only config options: set through them.
        let mut o = SessionOptions::default();
        o.session(&json!({"configOptions": [
            {"id": "approval", "category": "mode", "currentValue": "ask", "options": [{"value": "ask"}, {"value": "auto"}]},
            {"id": "llm", "category": "model", "currentValue": "a", "options": [{"value": "a"}, {"value": "b"}]},
            {"id": "effort", "category": "thought_level", "currentValue": "low", "options": []},
        ]}));
        assert_eq!(o.view("x").modes, ["x:ask", "x:auto"]);
        assert!(o.has_model("b") && !o.has_model("c"));
        assert_eq!(
            o.set_call("model", "s", "b"),
            Some((
                "session/set_config_option",
                json!({"sessionId": "s", "configId": "llm", "value": "b"})
            ))
        );
        assert!(o.update(&json!({"sessionUpdate": "config_option_update", "configOptions": [
            {"id": "approval", "category": "mode", "currentValue": "auto", "options": [{"value": "ask"}, {"value": "auto"}]},
        ]})));
        assert_eq!(o.mode(), Some("auto"));

        // Nothing offered: nothing to call.
        assert_eq!(
            SessionOptions::default().set_call("mode", "s", "plan"),
            None
        );
    }
}
