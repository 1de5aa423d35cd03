"""Alternative data: news, social posts, options flow and SEC Form 4 feeding the features'
``alternative`` family through the bar batches (see hub.py, runtime.py and README: Alternative data)."""
