//! The OpenAPI 3.1 document of the read API, served at `/api/v1/openapi.json`. Hand-written:
//! a test checks that every `/api/v1` route of the router is described here.

use serde_json::{json, Value};

use super::params::{MAX_FILTER_BYTES, MAX_TAG_FILTERS, SORTS};
use super::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::mapping::MAX_TAG_BYTES;

fn error_responses(codes: &[&str]) -> serde_json::Map<String, Value> {
    let mut map = serde_json::Map::new();
    for code in codes {
        let description = match *code {
            "400" => "A bad parameter; the message names it.",
            "401" => "Missing, unknown or expired credentials.",
            "403" => "A session token asking for something other than its session.",
            "404" => "No such id in the caller's project.",
            "413" => "A body over the limit.",
            _ => "Error.",
        };
        map.insert(
            (*code).to_owned(),
            json!({
                "description": description,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
            }),
        );
    }
    map
}

fn ok(description: &str, schema: &str, errors: &[&str]) -> Value {
    let mut responses = error_responses(errors);
    responses.insert(
        "200".into(),
        json!({
            "description": description,
            "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
        }),
    );
    Value::Object(responses)
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

fn path(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description, "schema": {"type": "string"}})
}

fn nullable(kind: &str) -> Value {
    json!({"type": [kind, "null"]})
}

/// The document.
pub fn document() -> Value {
    let time = json!({"type": "string", "format": "date-time"});
    // `q`, `agent`, `model`: not blank (they are trimmed); at most MAX_FILTER_BYTES bytes, after
    // trimming, which a JSON schema cannot say (its lengths count characters, untrimmed)
    let filter = json!({"type": "string", "minLength": 1, "pattern": "\\S",
        "description": format!("Not blank; at most {MAX_FILTER_BYTES} bytes once trimmed (a 400 otherwise).")});
    let read_errors = ["400", "401", "403"];
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "AgentOps server query API",
            "version": "1",
            "description": "Read access to the sessions, events, agents and statistics of the caller's project. \
                Credentials: the X-Agentops-Api-Key header, or Authorization: Bearer with a project token \
                (/v3/auth/token), a dashboard token (/api/v1/auth/dashboard-token) or a session token (its own \
                session only). Without credentials only when the server runs with open read access on loopback. \
                Errors are {\"error\": \"message\"}."
        },
        "security": [{"apiKey": []}, {"bearer": []}, {}],
        "paths": {
            "/api/v1/sessions": {"get": {
                "operationId": "listSessions",
                "summary": "Sessions of the project, filtered, sorted, one page at a time",
                "parameters": [
                    query("from", "Sessions started at or after this time (RFC 3339).", time.clone()),
                    query("to", "Sessions started before this time (RFC 3339); with from, it must be later than from.", time.clone()),
                    {"name": "tag", "in": "query", "required": false, "style": "form", "explode": true,
                     "description": format!("Sessions carrying every one of these tags; repeatable or comma-separated; \
                        at most {MAX_TAG_FILTERS} distinct tags of at most {MAX_TAG_BYTES} bytes each, none blank (a 400 otherwise)."),
                     "schema": {"type": "array", "items": {"type": "string", "minLength": 1, "pattern": "\\S"}}},
                    query("end_state", "The stored end state; running = not ended (no end time, and no end state or Indeterminate, as the 0.3 SDK creates sessions).",
                        json!({"type": "string", "enum": ["Success", "Fail", "Indeterminate", "running"]})),
                    query("agent", "Sessions with an agent of this id or registered name.", filter.clone()),
                    query("model", "Sessions with an event of this LLM model.", filter.clone()),
                    query("has_errors", "Sessions with (true) or without (false) a failed event.", json!({"type": "boolean"})),
                    query("q", "Case-insensitive text in the session's name or id, its tags, or an event name.", filter.clone()),
                    query("sort", "Order; a leading - means descending. Ties are broken by session id.",
                        json!({"type": "string", "enum": SORTS, "default": "-start_time"})),
                    query("limit", "Sessions per page.",
                        json!({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT})),
                    query("cursor", "The next_cursor of the previous page (opaque; made for the same sort; any other value is a 400).",
                        json!({"type": "string", "minLength": 1})),
                ],
                "responses": ok("One page of sessions.", "SessionList", &read_errors)
            }},
            "/api/v1/sessions/{id}": {"get": {
                "operationId": "getSession",
                "summary": "A session with its agents, events (flat, by start time), event tree and logs",
                "parameters": [path("id", "Session id."),
                    query("events", "full: the flat events (every field) and the event tree; tree: only the tree \
                        (no payloads; fetch an event for those); none: neither.",
                        json!({"type": "string", "enum": ["full", "tree", "none"], "default": "full"})),
                    query("since", "The cursor of an earlier answer for this session (opaque; any other value is a 400). \
                        While the cursor holds, the answer is a delta (delta: true): the session's summary, agents, \
                        host_env and video as they are now; log_records and logs stored after the cursor; and, when an \
                        event or log record was stored after it, every event's outline as event_tree and the new events \
                        as events (both left out otherwise). A cursor that no longer holds (rows deleted since) gets \
                        the whole answer (delta: false). For a live view: poll with the last answer's cursor.",
                        json!({"type": "string", "minLength": 1}))],
                "responses": ok("The session (events and event_tree as asked), whole or as a delta.", "SessionDetail", &["400", "401", "403", "404"])
            }},
            "/api/v1/sessions/{id}/events/{event_id}": {"get": {
                "operationId": "getEvent",
                "summary": "One event in full: prompt, completion, params, returns, attributes",
                "parameters": [path("id", "Session id."), path("event_id", "Event id (unique within its session).")],
                "responses": ok("The event.", "EventDetail", &["401", "403", "404"])
            }},
            "/api/v1/agents": {"get": {
                "operationId": "listAgents",
                "summary": "Agents seen in the project, with the number of sessions each appears in",
                "responses": ok("The agents, most used first.", "AgentList", &read_errors)
            }},
            "/api/v1/stats": {"get": {
                "operationId": "getStats",
                "summary": "Sessions, events, tokens and cost per day; per model; error rate; duration percentiles",
                "parameters": [
                    query("from", "Count what started at or after this time (RFC 3339).", time.clone()),
                    query("to", "Count what started before this time (RFC 3339); with from, it must be later than from.", time.clone()),
                ],
                "responses": ok("Statistics of the range.", "Stats", &read_errors)
            }},
            "/api/v1/metrics": {"get": {
                "operationId": "getMetrics",
                "summary": "The project's OTLP metrics: without name, the metrics stored; with name, its time series",
                "description": "Filter points by attribute with attr.<key>=<value> (repeatable; all must match). Sums give what was added per bucket (cumulative ones as increases), gauges the mean, histograms and summaries count, sum, min, max and the mean.",
                "parameters": [
                    query("name", "The metric; without it, the list of metrics.", json!({"type": "string", "minLength": 1, "pattern": "\\S"})),
                    query("from", "Points at or after this time (RFC 3339; default: 24 hours before to).", time.clone()),
                    query("to", "Points before this time (RFC 3339; default: now).", time.clone()),
                    query("bucket", "Bucket width: seconds, or a number with s, m, h or d (default: about 60 buckets; at most 10,000 buckets).", json!({"type": "string", "pattern": "^[0-9]+[smhd]?$"})),
                    query("group_by", "Attribute keys to split the series by (repeatable, or comma-separated).", json!({"type": "string"})),
                ],
                "responses": ok("The metrics, or the named metric's series.", "Metrics", &read_errors)
            }},
            "/api/v1/auth/dashboard-token": {"post": {
                "operationId": "createDashboardToken",
                "summary": "Exchange an API key for a short-lived, read-only, project-scoped token",
                "security": [{"apiKey": []}, {}],
                "requestBody": {"required": false, "description": "The API key, unless the header carries it (then the same key, or none).",
                    "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"api_key": {"type": "string", "format": "uuid"}}}}}},
                "responses": ok("The token; send it as Authorization: Bearer.", "DashboardToken", &["400", "401", "413"])
            }},
            "/api/v1/openapi.json": {"get": {
                "operationId": "getOpenApi",
                "summary": "This document",
                "security": [{}],
                "responses": {"200": {"description": "OpenAPI 3.1 document.",
                    "content": {"application/json": {"schema": {"type": "object"}}}}}
            }}
        },
        "components": {
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-Agentops-Api-Key"},
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
                "SessionSummary": {"type": "object",
                    "required": ["id", "tags", "event_count", "input_tokens", "output_tokens", "cost", "error_count", "has_errors"],
                    "properties": {
                        "id": {"type": "string"},
                        "name": nullable("string"),
                        "start_time": {"type": ["string", "null"], "format": "date-time"},
                        "end_time": {"type": ["string", "null"], "format": "date-time"},
                        "end_state": {"type": ["string", "null"], "enum": ["Success", "Fail", "Indeterminate", null]},
                        "end_state_reason": nullable("string"),
                        "state": {"type": "string", "enum": ["Running", "Success", "Fail", "Indeterminate"], "description": "For display: Running while not ended (no end time, and no end state or Indeterminate), else the end state."},
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "event_count": {"type": "integer"},
                        "input_tokens": {"type": "integer", "description": "Cached tokens included."},
                        "output_tokens": {"type": "integer", "description": "Reasoning tokens included."},
                        "cost": {"type": "number", "description": "US dollars."},
                        "error_count": {"type": "integer", "description": "Events with status error or kind errors."},
                        "has_errors": {"type": "boolean"},
                        "duration_ms": {"type": ["integer", "null"], "description": "Null while running."}
                    }},
                "SessionList": {"type": "object", "required": ["sessions", "next_cursor"], "properties": {
                    "sessions": {"type": "array", "items": {"$ref": "#/components/schemas/SessionSummary"}},
                    "next_cursor": {"type": ["string", "null"], "description": "Null on the last page."}
                }},
                "Event": {"type": "object", "required": ["id", "session_id", "kind", "start_time", "attributes"], "properties": {
                    "id": {"type": "string"},
                    "session_id": {"type": "string"},
                    "kind": {"type": "string", "description": "llms, tools, actions, errors, or another kind (agent, task, workflow, ...)."},
                    "name": nullable("string"),
                    "parent_id": nullable("string"),
                    "trace_id": nullable("string"),
                    "span_id": nullable("string"),
                    "start_time": {"type": "string", "format": "date-time"},
                    "end_time": {"type": ["string", "null"], "format": "date-time"},
                    "status": nullable("string"),
                    "failed": {"type": "boolean", "description": "Whether the event failed: status error, or an error event (the rule the totals use)."},
                    "status_message": nullable("string"),
                    "agent_id": nullable("string"),
                    "model": nullable("string"),
                    "provider": nullable("string"),
                    "prompt": {"description": "A string or chat messages."},
                    "completion": {"description": "A string or messages."},
                    "params": {},
                    "returns": {},
                    "input_tokens": nullable("integer"),
                    "output_tokens": nullable("integer"),
                    "cached_tokens": nullable("integer"),
                    "reasoning_tokens": nullable("integer"),
                    "cost": nullable("number"),
                    "attributes": {"type": "object"},
                    "messages": {"type": ["object", "null"], "description": "The prompt and answer as chat messages in one model for every producer (GenAI semantic conventions' parts form); null when the event has none or the view left payloads out.",
                        "required": ["input", "output"], "properties": {
                        "input": {"type": "array", "items": {"$ref": "#/components/schemas/Message"}},
                        "output": {"type": "array", "items": {"$ref": "#/components/schemas/Message"}}
                    }},
                    "tool_links": {"type": "array", "items": {"$ref": "#/components/schemas/ToolLink"}}
                }},
                "Message": {"type": "object", "required": ["role", "parts"], "properties": {
                    "role": {"type": "string", "description": "system, user, assistant, tool, ..."},
                    "parts": {"type": "array", "items": {"type": "object", "required": ["type"], "properties": {
                        "type": {"type": "string", "description": "text, tool_call, tool_call_response, reasoning, blob, uri, file, or another producer's type."}
                    }}},
                    "name": {"type": "string"},
                    "finish_reason": {"type": "string"}
                }},
                "ToolLink": {"type": "object", "required": ["call_id", "event_id", "direction"], "properties": {
                    "call_id": {"type": "string"},
                    "event_id": {"type": "string"},
                    "direction": {"type": "string", "enum": ["calls", "called_by"], "description": "calls: this LLM call asked for the tool the other event ran; called_by: this tool ran for the other event's call."}
                }},
                "LogRecord": {"type": "object", "required": ["time", "body", "attributes"], "properties": {
                    "time": {"type": "string", "format": "date-time"},
                    "severity": nullable("string"),
                    "event_name": nullable("string"),
                    "body": {},
                    "attributes": {"type": "object"},
                    "trace_id": nullable("string"),
                    "span_id": nullable("string"),
                    "event_id": {"type": ["string", "null"], "description": "The event of its span, when that is stored."}
                }},
                "EventDetail": {"allOf": [{"$ref": "#/components/schemas/Event"},
                    {"type": "object", "required": ["log_records"], "properties": {"duration_ms": nullable("number"),
                        "log_records": {"type": "array", "items": {"$ref": "#/components/schemas/LogRecord"}}}}]},
                "EventOutline": {"type": "object", "required": ["id", "depth"], "properties": {
                    "id": {"type": "string"},
                    "parent_id": nullable("string"),
                    "depth": {"type": "integer", "minimum": 0},
                    "tool_links": {"type": "array", "items": {"$ref": "#/components/schemas/ToolLink"}}
                }},
                "TreeNode": {"type": "object", "required": ["id", "depth", "children", "kind", "start_time"], "properties": {
                    "id": {"type": "string"},
                    "parent_id": nullable("string"),
                    "depth": {"type": "integer", "minimum": 0},
                    "children": {"type": "array", "items": {"type": "string"}},
                    "kind": {"type": "string"},
                    "name": nullable("string"),
                    "start_time": {"type": "string", "format": "date-time"},
                    "end_time": {"type": ["string", "null"], "format": "date-time"},
                    "duration_ms": nullable("number"),
                    "status": nullable("string"),
                    "failed": {"type": "boolean", "description": "Whether the event failed: status error, or an error event (the rule the totals use)."},
                    "model": nullable("string"),
                    "input_tokens": nullable("integer"),
                    "output_tokens": nullable("integer"),
                    "cost": nullable("number"),
                    "tool_links": {"type": "array", "items": {"$ref": "#/components/schemas/ToolLink"}}
                }},
                "SessionDetail": {"allOf": [{"$ref": "#/components/schemas/SessionSummary"}, {"type": "object",
                    "required": ["agents", "logs"], "properties": {
                    "host_env": {},
                    "video": nullable("string"),
                    "agents": {"type": "array", "items": {"type": "object", "properties": {
                        "id": {"type": "string"}, "name": {"type": "string"}}}},
                    "events": {"type": "array", "items": {"anyOf": [{"$ref": "#/components/schemas/Event"}, {"$ref": "#/components/schemas/TreeNode"}]},
                        "description": "Flat, by start time (in a delta: only the new ones; tree nodes with events=tree)."},
                    "event_tree": {"type": "array", "items": {"anyOf": [{"$ref": "#/components/schemas/TreeNode"}, {"$ref": "#/components/schemas/EventOutline"}]},
                        "description": "Depth first, children by start time (in a delta: outlines)."},
                    "cursor": {"type": "string", "description": "What this answer covers: pass it as since for only what is stored after."},
                    "delta": {"type": "boolean", "description": "Whether this answer holds only what changed after since."},
                    "logs": {"type": "array", "items": {"type": "string"}, "description": "Output uploaded by agentops 0.4 (/v4/logs/upload)."},
                    "log_records": {"type": "array", "items": {"$ref": "#/components/schemas/LogRecord"},
                        "description": "OTLP log records (/v1/logs), by time."}
                }}]},
                "Metrics": {"type": "object", "properties": {
                    "metrics": {"type": "array", "items": {"type": "object", "required": ["name", "kind", "points", "last_time"], "properties": {
                        "name": {"type": "string"}, "kind": {"type": "string"}, "unit": nullable("string"),
                        "points": {"type": "integer"}, "last_time": {"type": "string", "format": "date-time"}}}},
                    "name": {"type": "string"},
                    "kind": nullable("string"),
                    "unit": nullable("string"),
                    "temporality": nullable("string"),
                    "bucket_seconds": {"type": "integer", "minimum": 1},
                    "from": {"type": "string", "format": "date-time"},
                    "to": {"type": "string", "format": "date-time"},
                    "attribute_keys": {"type": "array", "items": {"type": "string"},
                        "description": "The attribute keys of the points in the range: what group_by and attr.<key> can use."},
                    "series": {"type": "array", "items": {"type": "object", "required": ["attributes", "points"], "properties": {
                        "attributes": {"type": "object"},
                        "points": {"type": "array", "items": {"type": "object", "required": ["time"], "properties": {
                            "time": {"type": "string", "format": "date-time"}, "value": nullable("number"),
                            "count": {"type": "integer"}, "sum": {"type": "number"}, "min": {"type": "number"}, "max": {"type": "number"}}}}
                    }}}
                }},
                "AgentList": {"type": "object", "required": ["agents"], "properties": {
                    "agents": {"type": "array", "items": {"type": "object", "required": ["id", "session_count"], "properties": {
                        "id": {"type": "string"},
                        "name": nullable("string"),
                        "session_count": {"type": "integer"}
                    }}}
                }},
                "Stats": {"type": "object", "properties": {
                    "from": {"type": ["string", "null"], "format": "date-time"},
                    "to": {"type": ["string", "null"], "format": "date-time"},
                    "sessions": {"type": "integer"},
                    "sessions_with_errors": {"type": "integer"},
                    "error_rate": {"type": "number", "description": "Sessions with a failed event / sessions."},
                    "events": {"type": "integer"},
                    "error_events": {"type": "integer"},
                    "event_error_rate": {"type": "number"},
                    "input_tokens": {"type": "integer"},
                    "output_tokens": {"type": "integer"},
                    "cost": {"type": "number"},
                    "duration_ms": {"type": "object", "description": "Of the ended sessions (nearest rank).", "properties": {
                        "count": {"type": "integer"},
                        "p50": nullable("integer"), "p90": nullable("integer"), "p99": nullable("integer")
                    }},
                    "days": {"type": "array", "items": {"type": "object", "properties": {
                        "date": {"type": "string", "format": "date"},
                        "sessions": {"type": "integer"}, "events": {"type": "integer"},
                        "error_events": {"type": "integer"},
                        "input_tokens": {"type": "integer"}, "output_tokens": {"type": "integer"},
                        "cost": {"type": "number"}
                    }}},
                    "models": {"type": "array", "items": {"type": "object", "properties": {
                        "model": {"type": "string"}, "calls": {"type": "integer"},
                        "input_tokens": {"type": "integer"}, "output_tokens": {"type": "integer"},
                        "cost": {"type": "number"}
                    }}}
                }},
                "DashboardToken": {"type": "object", "required": ["token", "project_id", "expires_in", "expires_at"], "properties": {
                    "token": {"type": "string"},
                    "project_id": {"type": "string"},
                    "expires_in": {"type": "integer", "description": "Seconds."},
                    "expires_at": {"type": "string", "format": "date-time"}
                }}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the session list refuses is what the document says is invalid (schemathesis
    /// found empty `q`, `agent`, `model`, `tag` and `cursor` declared valid, and refused).
    #[test]
    fn blank_filters_and_cursors_are_declared_invalid() {
        let doc = document();
        let params = doc["paths"]["/api/v1/sessions"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .clone();
        let schema = |name: &str| {
            params
                .iter()
                .find(|p| p["name"] == name)
                .unwrap_or_else(|| panic!("no parameter {name}"))["schema"]
                .clone()
        };
        for name in ["q", "agent", "model", "cursor"] {
            assert_eq!(schema(name)["minLength"], 1, "{name}");
            let refused = super::super::parse_session_query(&[(name.to_owned(), String::new())]);
            assert!(refused.is_err(), "{name}");
        }
        for name in ["q", "agent", "model"] {
            assert_eq!(schema(name)["pattern"], "\\S", "{name}");
        }
        assert_eq!(schema("tag")["items"]["minLength"], 1);
    }

    /// Every `/api/v1` route registered in `lib.rs` is described, with its method.
    #[test]
    fn every_api_route_of_the_router_is_documented() {
        let doc = document();
        let source = include_str!("../lib.rs");
        let mut found = 0;
        for chunk in source.split(".route(").skip(1) {
            let Some(path) = chunk
                .trim_start()
                .strip_prefix('"')
                .and_then(|r| r.split('"').next())
            else {
                continue;
            };
            if !path.starts_with("/api/v1") {
                continue;
            }
            let method = ["get", "post", "put", "delete", "patch"]
                .into_iter()
                .find(|m| chunk.contains(&format!("{m}(api::")))
                .unwrap_or_else(|| panic!("no method found for {path}"));
            assert!(
                doc["paths"][path][method].is_object(),
                "{method} {path} is not in the OpenAPI document"
            );
            found += 1;
        }
        assert!(found >= 7, "only {found} /api/v1 routes found in lib.rs");
        assert_eq!(doc["paths"].as_object().map(|p| p.len()), Some(found));
    }
}
