from django.contrib.auth import views as auth
from django.urls import path
from django.views.generic import RedirectView

from examples.smartkosh.ledger import views

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="imports")),
    path("login/", auth.LoginView.as_view(), name="login"),
    path("logout/", auth.LogoutView.as_view(), name="logout"),
    path("signup/", views.signup, name="signup"),
    path("imports/", views.imports, name="imports"),
    path("imports/failed/", views.failed_imports, name="failed-imports"),
    path("imports/<int:pk>/", views.import_detail, name="import-detail"),
    path("imports/<int:pk>/retry/", views.retry_import, name="retry-import"),
    path("notifications/", views.notifications, name="notifications"),
    path("api/imports/", views.api_imports, name="api-imports"),
    path("api/imports/<int:pk>/", views.api_import, name="api-import"),
    path("api/notifications/", views.api_notifications, name="api-notifications"),
    path("api/transactions/", views.api_transactions, name="api-transactions"),
]
