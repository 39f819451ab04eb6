"""The Textual shell: screens and widgets over the headless core. Only this package imports Textual."""
