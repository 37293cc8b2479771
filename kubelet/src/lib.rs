//! kubelet: runs pods through CRI on containerd. Not built yet (see the issue
//! "kubelet: run pods for real"); no binary is shipped until it works.
#![forbid(unsafe_code)]
