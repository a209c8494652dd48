"""Reading files into articles: formats, encodings, newspaper page segmentation."""
