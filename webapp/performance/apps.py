from django.apps import AppConfig


class PerformanceConfig(AppConfig):
    name = "webapp.performance"
    verbose_name = "This site's figures"

    def ready(self):
        # A saved review may tip the drift rule: checked after its transaction commits.
        from webapp.performance import audit_links, signals  # noqa: F401

        audit_links.register()  # the audit page links a drift alarm's row to the model page
