"""Real clusters: inventories' consumers, kubeadm configuration, (later) deploy and reset."""
