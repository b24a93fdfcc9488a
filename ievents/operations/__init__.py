"""The project's operations across apps: erasing a person, the retention pass, the admin's
overview. They sit on top of every app (docs/architecture.md, "The layers")."""
