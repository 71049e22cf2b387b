from django.apps import AppConfig


class CasesConfig(AppConfig):
    name = "webapp.cases"
    label = "cases"
    verbose_name = "Cases and jobs"

    def ready(self):
        from webapp.cases import audit_links  # the models are loaded only now

        audit_links.register()  # the audit page links its rows to cases and images
        from webapp.cases.services import retention  # noqa: F401  (registers its system check)
        from webapp.cases.services import patients  # noqa: F401  (its check: patients.E001)
