"""Reports over the stored history: the service-quality indicators managers track."""
