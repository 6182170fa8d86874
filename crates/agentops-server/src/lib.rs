//! The AgentOps server.
