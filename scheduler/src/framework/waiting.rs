//! Pods a Permit plugin holds before binding (upstream's waitingPodsMap):
//! whoever decides (another plugin, a controller) allows or rejects them.

use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::oneshot;

/// `Ok(())` lets the pod bind; `Err(message)` sends it back to the queue.
pub type Verdict = Result<(), String>;

#[derive(Default)]
pub struct WaitingPods {
    pods: Mutex<HashMap<String, oneshot::Sender<Verdict>>>,
}

impl WaitingPods {
    /// Holds pod `uid`; the receiver gets the verdict.
    pub fn hold(&self, uid: &str) -> oneshot::Receiver<Verdict> {
        let (tx, rx) = oneshot::channel();
        self.pods
            .lock()
            .expect("never poisoned")
            .insert(uid.to_string(), tx);
        rx
    }

    /// Lets a held pod bind; false if it is not held.
    pub fn allow(&self, uid: &str) -> bool {
        self.decide(uid, Ok(()))
    }

    /// Sends a held pod back with `message`; false if it is not held.
    pub fn reject(&self, uid: &str, message: &str) -> bool {
        self.decide(uid, Err(message.to_string()))
    }

    /// Forgets a pod whose wait ended otherwise (timed out).
    pub fn release(&self, uid: &str) {
        self.pods.lock().expect("never poisoned").remove(uid);
    }

    /// The uids held now.
    pub fn held(&self) -> Vec<String> {
        let pods = self.pods.lock().expect("never poisoned");
        pods.keys().cloned().collect()
    }

    fn decide(&self, uid: &str, verdict: Verdict) -> bool {
        let tx = self.pods.lock().expect("never poisoned").remove(uid);
        tx.is_some_and(|tx| tx.send(verdict).is_ok())
    }
}
