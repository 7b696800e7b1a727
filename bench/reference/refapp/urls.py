from django.urls import path

from .views import ItemCreate, ItemDetail

urlpatterns = [
    path("items", ItemCreate.as_view()),
    path("items/<int:pk>", ItemDetail.as_view()),
]
