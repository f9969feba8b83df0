"""Gateway-side notice listeners: stream, UDP, poll and control-address mail.

Every listener hands raw envelope bytes to the one `notices.verify.NoticeVerifier.submit`;
effects reach the gateway through the `notices.sink.OutbreakSink` Protocol.
"""
