"""Telegram front end of the free telemedicine programme «Облако здоровья»."""
