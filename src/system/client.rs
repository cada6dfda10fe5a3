//! A test's own endpoint in the system: a node that sends the test's requests and keeps the
//! replies.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::messages::NodeHandle;
use crate::node::{Ctl, NoConfig, NoTimer, NodeError, TypedNode, Volatile};

/// A client node whose replies are of type `R` (the protocol's reply messages). A test makes one
/// with [`Sim::client`](super::Sim::client), sends requests through it with
/// [`Sim::request`](super::Sim::request) — they leave from the client's machine, through the
/// network and the link layer, like any node's messages — and reads what came back with
/// [`Sim::replies`](super::Sim::replies). Nodes answer it as they answer any sender: a
/// `Handle<Client<R>>` takes `R`s. A system has clients of one reply type (registered with
/// [`Builder::client`](super::Builder::client)).
pub struct Client<R> {
    received: Vec<Reply<R>>,
    reply_type: PhantomData<fn() -> R>,
}

/// One reply a client received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply<R> {
    /// Who sent it.
    pub from: Option<NodeHandle>,
    /// What it said.
    pub message: R,
}

impl<R> TypedNode for Client<R>
where
    R: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    const TYPE: &'static str = "Client";
    type Config = NoConfig;
    type Message = R;
    type State = Vec<Reply<R>>;
    type Timer = NoTimer;
    type Durable = Volatile;

    fn new(_: NoConfig) -> Result<Self, NodeError> {
        Ok(Client {
            received: Vec::new(),
            reply_type: PhantomData,
        })
    }

    fn receive(
        &mut self,
        _ctl: &mut Ctl<'_, Self>,
        from: Option<NodeHandle>,
        message: R,
    ) -> Result<(), NodeError> {
        self.received.push(Reply { from, message });
        Ok(())
    }

    fn state(&self) -> Vec<Reply<R>> {
        self.received.clone()
    }
}
