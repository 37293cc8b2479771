//! kube-controller-manager: level-triggered controllers. Not built yet (see
//! the issue "kube-controller-manager"); no binary is shipped until it works.
#![forbid(unsafe_code)]
