"""Configuration read at the door: field readers whose errors name the file and the key,
index definition files, and the deployment file."""
