from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models


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

    def save(self, *args, **kwargs):
        # Administrators use the Django admin; clinicians never do.
        if self.role == Role.ADMIN:
            self.is_staff = True
        super().save(*args, **kwargs)


class Team(models.Model):
    """A ward, a department or a site: the people who read each other's cases. A case belongs
    to its uploader's team (``Case.team``, set at submission), and every member sees and
    reviews it (``webapp.cases.services.access``). Administrators manage teams in the admin."""

    name = models.CharField(max_length=100, unique=True)
    members = models.ManyToManyField(User, related_name="teams", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name
