from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.dispatch import Signal
from knox.models import AbstractAuthToken

# Sent (with ``user``) after a save that changed the user's password.
password_changed_signal = Signal()


class Role(models.TextChoices):
    CLINICIAN = "clinician", "Clinician"
    ADMIN = "admin", "Administrator"


class PneumothoraxUserManager(UserManager):
    def create_superuser(self, username, email=None, password=None, **extra_fields):
        extra_fields.setdefault("role", Role.ADMIN)
        return super().create_superuser(username, email, password, **extra_fields)


class User(AbstractUser):
    """A person using the service. The role decides what they see: a clinician sees their own
    cases, their teams' cases and their own audit trail; an administrator sees everyone's."""

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.CLINICIAN)

    objects = PneumothoraxUserManager()

    @property
    def is_admin_role(self) -> bool:
        return self.role == Role.ADMIN or self.is_superuser

    @classmethod
    def from_db(cls, db, field_names, values):
        user = super().from_db(db, field_names, values)
        # The hash as loaded, to tell in save() whether the password changed (deferred: unknown).
        user._loaded_password = user.__dict__.get("password")
        return user

    def save(self, *args, **kwargs):
        # Administrators use the Django admin; clinicians never do.
        if self.role == Role.ADMIN:
            self.is_staff = True
        password_changed = self._password_changed(kwargs.get("update_fields"))
        super().save(*args, **kwargs)
        if password_changed:
            # Every path that changes a password ends here (set_password + save, the admin's
            # password form, changepassword): the receiver (signals.py) revokes the API tokens
            # issued under the old one.
            password_changed_signal.send(sender=type(self), user=self)
        self._loaded_password = self.password

    def _password_changed(self, update_fields) -> bool:
        if self.pk is None or (update_fields is not None and "password" not in update_fields):
            return False
        loaded = getattr(self, "_loaded_password", None)
        if loaded is None:  # built by hand, or the field was deferred: ask the database
            loaded = type(self).objects.filter(pk=self.pk).values_list("password", flat=True).first()
        return loaded is not None and loaded != self.password


class Team(models.Model):
    """A ward, a department or a site: the people who read each other's cases. A case belongs
    to its uploader's team (``Case.team``, set at submission), and every member sees and
    reviews it (``webapp.cases.services.access``). Administrators manage teams in the admin."""

    name = models.CharField(max_length=100, unique=True)
    members = models.ManyToManyField(User, related_name="teams", blank=True)
    # Where review-first alerts for the team's films are e-mailed (issue 22); blank: no e-mail.
    on_call_email = models.EmailField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class ApiToken(AbstractAuthToken):
    """An API token (django-rest-knox): only a SHA-512 digest and the first characters
    (``token_key``, shown to tell tokens apart) are stored; the key itself is shown once, when
    it is created. It expires (``API_TOKEN_TTL_DAYS``) and is revoked when its owner's password
    changes. Looked up by ``id`` in URLs, never by the digest."""

    id = models.BigAutoField(primary_key=True)
    digest = models.CharField(max_length=128, unique=True)
    name = models.CharField(max_length=100, blank=True,
                            help_text="What the token is for, e.g. \"PACS bridge\" or \"night batch\".")
    last_used = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        verbose_name, verbose_name_plural = "API token", "API tokens"

    def __str__(self):
        return f"{self.token_key}\u2026 ({self.user})"


class OidcIdentity(models.Model):
    """Which OpenID Connect account signs in as which user (webapp.accounts.oidc_backend): the
    provider's issuer and the account's ``sub``, which the provider never changes and never
    gives to anyone else (OpenID Connect Core, section 5.7). E-mail addresses and user names are
    not that: they are renamed, reused, and on some providers typed in by the user, so matching
    on them could sign one person in as another (a local admin named "admin", say)."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="oidc_identity")
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name, verbose_name_plural = "OpenID Connect identity", "OpenID Connect identities"
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"],
                                               name="accounts_oidc_identity_unique_subject")]

    def __str__(self):
        return f"{self.user} ({self.issuer})"
