"""Test helpers shared by the end-to-end and attack tests (importable as `helpers`: pytest puts
`tests/` on sys.path through the root conftest).

- `net`: ephemeral ports on 127.0.0.1, wait-for-port, `wait_until`.
- `sinks`: `RecordingSink` (aiosmtpd next hop in the test process; stop/start on the same port;
  `data_reply` / `refuse_rcpts` to make it answer 4xx/5xx) and `PostfixSmtpSink` (smtp-sink
  with one dump file per message).
- `gateway`: `GatewayProcess` (`zerohour gateway run` subprocess; start waits for the port,
  stop is SIGTERM then SIGKILL, `kill()` is the crash), `gateway_toml()` test settings.
- `clients`: smtplib and swaks senders returning the deciding reply; `smtp.RawSmtp` for exact
  bytes (smuggling, garbage, slow-loris, STARTTLS injection).
- `postfix`: a private Postfix instance (own config/queue dirs, ephemeral port) relaying to a
  relayhost, optionally as an after-queue content_filter with a re-injection smtpd.
- `messages`: clean mail, EICAR plain / base64 attachment / zipped, `wire_bytes()` (CRLF).

Fixtures (tests/conftest.py): `sink`, `postfix_sink`, `gateway_factory`, and the module-shared
`module_gateway_factory`, `module_sink`, `fresh_sink`.
"""
