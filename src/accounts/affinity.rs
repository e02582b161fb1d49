//! Which account a conversation started on, so its next turns go there too and codex's prompt
//! cache keeps hitting. A conversation is known by the chat id OpenWebUI sends, or else by its
//! opening messages, which every later turn repeats.

use std::{
    collections::{HashMap, VecDeque},
    hash::{DefaultHasher, Hash, Hasher},
};

use crate::conversation::{Conversation, Item, Part};

/// The most conversations remembered; the oldest is forgotten first. A forgotten conversation
/// only loses its cache on its next turn.
pub const REMEMBERED: usize = 10_000;

/// The most leading instructions hashed before the first question.
const OPENING_ITEMS: usize = 8;

/// A conversation, by its chat id when the client sent one, or else by its opening items.
pub fn conversation_key(chat_id: Option<&str>, conversation: Option<&Conversation>) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    match (
        chat_id.map(str::trim).filter(|id| !id.is_empty()),
        conversation,
    ) {
        (Some(id), _) => ("chat", id).hash(&mut hasher),
        (None, Some(conversation)) if !conversation.items.is_empty() => {
            "opening".hash(&mut hasher);
            // The instructions up to the first question, and that question: what the first
            // turn held, which each later turn repeats.
            for item in conversation.items.iter().take(OPENING_ITEMS) {
                hash_item(item, &mut hasher);
                if matches!(item, Item::User { .. }) {
                    break;
                }
            }
        }
        _ => return None,
    }
    Some(hasher.finish())
}

fn hash_item(item: &Item, hasher: &mut DefaultHasher) {
    std::mem::discriminant(item).hash(hasher);
    for part in item.parts() {
        match part {
            Part::Text(text) => text.hash(hasher),
            Part::Image(image) => image.bytes.len().hash(hasher),
        }
    }
}

/// Conversation → the index of its account, bounded by [`REMEMBERED`].
#[derive(Debug, Default)]
pub struct Affinity {
    accounts: HashMap<u64, usize>,
    /// Keys, oldest first, for forgetting.
    order: VecDeque<u64>,
}

impl Affinity {
    pub fn get(&self, conversation: u64) -> Option<usize> {
        self.accounts.get(&conversation).copied()
    }

    pub fn set(&mut self, conversation: u64, account: usize) {
        if self.accounts.insert(conversation, account).is_none() {
            self.order.push_back(conversation);
            while self.order.len() > REMEMBERED {
                if let Some(oldest) = self.order.pop_front() {
                    self.accounts.remove(&oldest);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(text: &str) -> Item {
        Item::User {
            parts: vec![Part::Text(text.into())],
        }
    }

    #[test]
    fn a_conversation_is_known_by_its_chat_id_or_its_opening() {
        let first = Conversation {
            items: vec![user("Hi")],
        };
        let later = Conversation {
            items: vec![
                user("Hi"),
                Item::Assistant {
                    parts: vec![Part::Text("Hello".into())],
                    calls: vec![],
                },
                user("And now?"),
            ],
        };
        let other = Conversation {
            items: vec![user("Bonjour")],
        };
        let key = |c| conversation_key(None, Some(c));
        assert_eq!(key(&first), key(&later));
        assert_ne!(key(&first), key(&other));
        assert_eq!(
            conversation_key(Some("chat-1"), Some(&first)),
            conversation_key(Some("chat-1"), Some(&other))
        );
        assert_ne!(
            conversation_key(Some("chat-1"), None),
            conversation_key(Some("chat-2"), None)
        );
        assert_eq!(conversation_key(Some(" "), None), None);
        assert_eq!(conversation_key(None, Some(&Conversation::default())), None);
    }

    #[test]
    fn the_oldest_conversation_is_forgotten_past_the_bound() {
        let mut affinity = Affinity::default();
        for key in 0..=REMEMBERED as u64 {
            affinity.set(key, 1);
        }
        assert_eq!(affinity.get(0), None);
        assert_eq!(affinity.get(1), Some(1));
        assert_eq!(affinity.get(REMEMBERED as u64), Some(1));
        affinity.set(1, 0);
        assert_eq!(affinity.get(1), Some(0), "a move is remembered");
        assert_eq!(affinity.accounts.len(), REMEMBERED);
    }
}
