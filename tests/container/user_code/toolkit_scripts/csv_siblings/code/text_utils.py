def clean(line):
    return " ".join(line.split()).strip('"')
