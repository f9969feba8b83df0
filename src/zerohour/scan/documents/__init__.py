"""Documents that carry other files: PDF, RTF, OLE2 (Word, Excel, PowerPoint, Outlook .msg),
OneNote and CHM. Each module yields the layers a reader would open (decoded streams, embedded
objects, attachments, macro source) under the same budget and fail-closed rules as archives
(see `zerohour.scan.limits`)."""
