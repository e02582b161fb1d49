//! Stored responses: what `store` keeps so that `previous_response_id` continues a response and
//! `GET` / `DELETE /v1/responses/{id}` find it. In memory, bounded in count and age: the proxy
//! keeps no state a restart or another replica must have (a client that needs a conversation
//! to outlive both sends it whole in `input`, as the Agents SDK and LangChain do).

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::{Duration, Instant},
};

use serde_json::Value;

/// One stored response: the object, and the conversation it ended (its input items, the
/// earlier ones it continued included, then its output items).
#[derive(Debug, Clone)]
pub struct Stored {
    pub response: Value,
    pub conversation: Vec<Value>,
}

pub struct ResponseStore {
    max: usize,
    max_age: Duration,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<String, (Instant, Stored)>,
    /// Ids oldest first, for eviction.
    order: VecDeque<String>,
    /// Each stored output item's id, to the response that holds it: an `item_reference` is
    /// found at once, however many a request sends.
    items: HashMap<String, String>,
}

impl ResponseStore {
    pub fn new(max: usize, max_age: Duration) -> Self {
        ResponseStore {
            max,
            max_age,
            inner: Mutex::default(),
        }
    }

    /// Keeps `stored` under `id`, dropping the oldest beyond the count.
    pub fn put(&self, id: String, stored: Stored) {
        if self.max == 0 {
            return;
        }
        let mut inner = self.inner.lock().expect("store lock");
        inner.evict_expired(self.max_age);
        while inner.by_id.len() >= self.max {
            match inner.order.pop_front() {
                Some(oldest) => inner.forget(&oldest),
                None => break,
            }
        }
        for item in output_ids(&stored.response) {
            inner.items.insert(item.to_owned(), id.clone());
        }
        inner.order.push_back(id.clone());
        inner.by_id.insert(id, (Instant::now(), stored));
    }

    pub fn get(&self, id: &str) -> Option<Stored> {
        let mut inner = self.inner.lock().expect("store lock");
        inner.evict_expired(self.max_age);
        inner.by_id.get(id).map(|(_, stored)| stored.clone())
    }

    /// An output item of a stored response, by its `id`: what an `item_reference` input item
    /// names (the Vercel AI SDK refers to its earlier answers so while `store` is on).
    pub fn item(&self, id: &str) -> Option<Value> {
        let mut inner = self.inner.lock().expect("store lock");
        inner.evict_expired(self.max_age);
        let response = inner.items.get(id)?;
        let (_, stored) = inner.by_id.get(response)?;
        stored.response["output"]
            .as_array()?
            .iter()
            .find(|item| item["id"] == id)
            .cloned()
    }

    /// Whether there was one to delete.
    pub fn delete(&self, id: &str) -> bool {
        let mut inner = self.inner.lock().expect("store lock");
        let found = inner.by_id.contains_key(id);
        if found {
            inner.forget(id);
            inner.order.retain(|kept| kept != id);
        }
        found
    }
}

impl Inner {
    fn evict_expired(&mut self, max_age: Duration) {
        while let Some(oldest) = self.order.front() {
            let expired = self
                .by_id
                .get(oldest)
                .is_none_or(|(at, _)| at.elapsed() > max_age);
            if !expired {
                break;
            }
            let oldest = self.order.pop_front().expect("checked above");
            self.forget(&oldest);
        }
    }

    /// Drops the response `id` and the index of its output items (`order` is the caller's).
    fn forget(&mut self, id: &str) {
        if let Some((_, stored)) = self.by_id.remove(id) {
            for item in output_ids(&stored.response) {
                if self.items.get(item).is_some_and(|holder| holder == id) {
                    self.items.remove(item);
                }
            }
        }
    }
}

/// The ids of a response's output items.
fn output_ids(response: &Value) -> impl Iterator<Item = &str> {
    response["output"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item["id"].as_str())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn stored(n: u64) -> Stored {
        Stored {
            response: json!({"n": n}),
            conversation: vec![],
        }
    }

    #[test]
    fn the_count_and_the_age_are_bounded_and_delete_forgets() {
        let store = ResponseStore::new(2, Duration::from_secs(60));
        store.put("a".into(), stored(1));
        store.put("b".into(), stored(2));
        store.put("c".into(), stored(3));
        assert!(store.get("a").is_none(), "the oldest went first");
        assert_eq!(store.get("c").unwrap().response["n"], 3);
        assert!(store.delete("b"));
        assert!(!store.delete("b"));
        assert!(store.get("b").is_none());

        let short = ResponseStore::new(10, Duration::from_millis(1));
        short.put("x".into(), stored(1));
        std::thread::sleep(Duration::from_millis(5));
        assert!(short.get("x").is_none(), "expired");

        let off = ResponseStore::new(0, Duration::from_secs(60));
        off.put("y".into(), stored(1));
        assert!(off.get("y").is_none(), "RESPONSES_STORED=0 keeps nothing");
    }

    #[test]
    fn an_item_is_found_by_its_id_in_any_stored_output_until_its_response_goes() {
        let store = ResponseStore::new(2, Duration::from_secs(60));
        let output = |ids: &[&str]| Stored {
            response: json!({"output": ids.iter().map(|id| json!({"id": id})).collect::<Vec<_>>()}),
            conversation: vec![],
        };
        store.put("resp_a".into(), output(&["rs_1", "msg_1"]));
        store.put("resp_b".into(), output(&["msg_2"]));
        assert_eq!(store.item("msg_1"), Some(json!({"id": "msg_1"})));
        assert_eq!(store.item("msg_2"), Some(json!({"id": "msg_2"})));
        assert_eq!(store.item("resp_a"), None, "a response id is no item");
        store.delete("resp_b");
        assert_eq!(store.item("msg_2"), None);
        // Evicted past the count, its items go with it; the index holds only what is stored.
        store.put("resp_c".into(), output(&["msg_3"]));
        store.put("resp_d".into(), output(&["msg_4"]));
        assert_eq!(store.item("msg_1"), None, "resp_a was the oldest");
        assert_eq!(store.item("msg_4"), Some(json!({"id": "msg_4"})));
        assert_eq!(store.inner.lock().unwrap().items.len(), 2);
    }
}
