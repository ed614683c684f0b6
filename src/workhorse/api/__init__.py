"""HTTP API: IronWorker v2, IronMQ v3 and a native v1 JSON API over the core."""
