"""Reports: display formatting (`format`) and Jinja2 templates with autoescaping (`render`)."""
