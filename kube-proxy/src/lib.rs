//! kube-proxy: Services to pods with nftables/iptables. Not built yet (see the
//! issue "kube-proxy and cluster DNS"); no binary is shipped until it works.
#![forbid(unsafe_code)]
