from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from caipi.core.models import Course, Membership, User


@admin.register(User)
class CaipiUserAdmin(UserAdmin):
    list_display = ("username", "display_name", "email", "site_role", "is_staff")
    list_filter = ("site_role", "is_staff", "is_superuser", "is_active")
    fieldsets = (
        *(UserAdmin.fieldsets or ()),
        ("CAIPI", {"fields": ("display_name", "locale", "site_role")}),
    )


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ("label", "title", "created_at")
    search_fields = ("label", "title")
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "course", "role")
    list_filter = ("role",)
    search_fields = ("user__username", "course__title")
