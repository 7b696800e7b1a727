"""evpay's own OCPI 2.2.1 endpoints as the eMSP (the CPO calls these): versions and version details,
credentials (the handshake as receiver), the commands receiver for CommandResult, and the Sessions and CDRs
receivers that feed charge sessions through `feed` (filled in by the charging app)."""
