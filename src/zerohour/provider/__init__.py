"""The provider service: notice log, lab commands, HTTP server and push transports."""
