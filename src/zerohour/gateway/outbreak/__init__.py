"""The outbreak path of the gateway, shaped like the mail path: `state` (active outbreaks and
the installed database version, durable in the store), `sink` (what a verified notice does:
declare, end, install a bundle, converge), `signatures` (the installed database: bundles from
the store and the operator's folders, swapped into the scan workers) and `release` (rescan
held mail and hand every verdict to `gateway.act`)."""
