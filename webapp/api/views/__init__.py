"""REST API v1 views, one module per resource: ``cases`` (cases and their images), ``files``
(an image's files), ``batches``. Each is thin: a serializer validates, a service acts, a
payload answers; ``base.ApiView`` adds the audit row and pagination."""
