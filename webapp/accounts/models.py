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
    cases and audit trail, an administrator sees everyone's."""

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
