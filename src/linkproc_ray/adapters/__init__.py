"""Ray adapters: named org actors, parse tasks, the Serve app. The only package that imports Ray."""
