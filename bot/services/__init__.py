"""Domain rules and transactions. No aiogram types here: plain values and DTOs in and out."""
