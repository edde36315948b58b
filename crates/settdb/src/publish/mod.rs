//! Subscriptions to committed updates (Badger's `Subscribe` and publisher): which keys a
//! subscription takes ([`Match`]), the registry the writer publishes each applied group to
//! ([`Publisher`]), each subscription's bounded buffer ([`Subscriber`]) and the caller's end
//! ([`Subscription`]). docs/design/subscribe.md gives the guarantees.

mod matcher;
mod publisher;
mod subscriber;
mod subscription;
mod update;

pub use matcher::Match;
pub(crate) use publisher::Publisher;
pub use subscriber::SubscribeOptions;
pub use subscription::{SubscriberThread, Subscription, SubscriptionCancel};
pub(crate) use update::Publishable;
pub use update::Update;
